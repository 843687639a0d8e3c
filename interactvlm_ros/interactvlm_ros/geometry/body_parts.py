"""Body-part vocabulary shared by every body model.

Per-vertex part labels are derived from linear-blend-skinning weights: a vertex belongs to
the part of the joint that moves it most. The part names are the plain words a VLM answer
uses ("right hand"), one per SMPL body joint, with finger joints folded into their hand and
the jaw and eyes into the head.
"""

from __future__ import annotations

#: Part names, in label order (a part label is an index into this tuple).
BODY_PARTS: tuple[str, ...] = (
    "hips",
    "left upper leg",
    "right upper leg",
    "lower back",
    "left lower leg",
    "right lower leg",
    "abdomen",
    "left foot",
    "right foot",
    "chest",
    "left toes",
    "right toes",
    "neck",
    "left shoulder",
    "right shoulder",
    "head",
    "left upper arm",
    "right upper arm",
    "left forearm",
    "right forearm",
    "left hand",
    "right hand",
)

#: The 22 body joints shared by SMPL, SMPL-H and SMPL-X, in their kinematic-tree order;
#: joint i of that order maps to BODY_PARTS[i].
SMPL_BODY_JOINTS: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)


def part_of_smpl_joint(joint: int, num_body_joints: int = 22, hand_joints_per_side: int = 15) -> int:
    """Part label of an SMPL-family joint index.

    Joints 0..21 are the body joints above. SMPL-H orders 15 left-hand then 15 right-hand
    finger joints after them (22..36 left, 37..51 right). SMPL-X inserts jaw, left eye and
    right eye (22, 23, 24) before the hands; pass ``num_body_joints=25`` for SMPL-X.

    Raises:
        ValueError: a joint index outside the model's joints.
    """
    if 0 <= joint < 22:
        return joint
    if joint < num_body_joints:  # SMPL-X jaw and eyes
        return BODY_PARTS.index("head")
    hand = joint - num_body_joints
    if 0 <= hand < hand_joints_per_side:
        return BODY_PARTS.index("left hand")
    if hand_joints_per_side <= hand < 2 * hand_joints_per_side:
        return BODY_PARTS.index("right hand")
    raise ValueError(f"joint {joint} is not a joint of this model ({num_body_joints} body joints + hands)")
