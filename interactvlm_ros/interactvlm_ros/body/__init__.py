"""People in the robot's space (no ROS imports): each person detection becomes a body posed in
the image's optical frame. A pose source gives the person's landmarks (image pixels, visibility
and metric world coordinates), :mod:`.placement` places them in metres in the camera's optical
frame (registered depth, or PnP with the intrinsics), and the contact body is posed to them.
"""
