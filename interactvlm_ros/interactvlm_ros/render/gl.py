"""Headless OpenGL rasteriser (moderngl, EGL) for triangle meshes and point splats.

One pixel sample per pixel centre, no anti-aliasing, no back-face culling, nearest surface
wins: the semantics of PyTorch3D's ``MeshRasterizer`` with ``faces_per_pixel=1``,
``blur_radius=0`` and of its point rasteriser with one point per pixel. Barycentric
coordinates are perspective-correct. The face id is ``gl_PrimitiveID`` of a non-indexed draw
(one triangle per face, in face order); the point id is ``gl_VertexID``.

EGL gives a context without a display on Mesa (llvmpipe, CPU) and on NVIDIA drivers (GPU).
A moderngl context belongs to the thread that created it: use a renderer from one thread.
Where two faces meet, a pixel centre exactly on the shared edge may be given to either face
(OpenGL's top-left rule, PyTorch3D's own tie-break): the only expected difference from an
exact ray caster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.camera import Camera
from .fragments import MeshFragments, PointFragments, clamp_barycentric

#: Shared by both vertex shaders: PyTorch3D's view transform and perspective projection.
_PROJECTION = """
uniform mat3 rotation;   // GLSL reads the row-major numpy R as its transpose: R^T p = p R
uniform vec3 translation;
uniform float inv_tan;
uniform float near;
uniform float far;
// PyTorch3D view: +X left, +Y up, +Z forward. OpenGL NDC: +X right, +Y up.
vec4 project(vec3 view) {
    return vec4(-view.x * inv_tan, view.y * inv_tan,
                (far + near) / (far - near) * view.z - 2.0 * far * near / (far - near), view.z);
}
"""

_MESH_VERTEX_SHADER = "#version 330\n" + _PROJECTION + """
in vec3 in_position;
in vec3 in_normal;
in vec3 in_corner;
in vec3 in_color;
out vec3 v_world;
out vec3 v_normal;
out vec3 v_corner;
out vec3 v_color;
out float v_depth;
void main() {
    vec3 view = rotation * in_position + translation;
    v_world = in_position;
    v_normal = in_normal;
    v_corner = in_corner;
    v_color = in_color;
    v_depth = view.z;
    gl_Position = project(view);
}
"""

_MESH_FRAGMENT_SHADER = """
#version 330
uniform int phong;             // 0: unlit vertex colours, 1: PyTorch3D HardPhongShader
uniform vec3 light_location;   // point light, world frame
uniform vec3 camera_centre;    // world frame
uniform float ambient;
uniform float diffuse;
uniform float specular;
uniform float shininess;
in vec3 v_world;
in vec3 v_normal;
in vec3 v_corner;
in vec3 v_color;
in float v_depth;
layout(location = 0) out vec4 out_color;
layout(location = 1) out int out_id;
layout(location = 2) out vec4 out_barycentric_depth;
vec3 safe_normalize(vec3 v) { return v / max(length(v), 1e-6); }
void main() {
    vec3 color = v_color;
    if (phong == 1) {
        vec3 n = safe_normalize(v_normal);
        vec3 l = safe_normalize(light_location - v_world);
        float cos_nl = dot(n, l);
        vec3 reflected = -l + 2.0 * cos_nl * n;
        vec3 to_camera = safe_normalize(camera_centre - v_world);
        float highlight = cos_nl > 0.0 ? max(dot(to_camera, reflected), 0.0) : 0.0;
        color = (ambient + diffuse * max(cos_nl, 0.0)) * v_color + specular * pow(highlight, shininess);
    }
    out_color = vec4(color, 1.0);
    out_id = gl_PrimitiveID;
    out_barycentric_depth = vec4(v_corner, v_depth);
}
"""

_POINT_VERTEX_SHADER = "#version 330\n" + _PROJECTION + """
uniform float point_size;
in vec3 in_position;
in vec3 in_color;
out vec3 v_color;
flat out int v_id;
out float v_depth;
void main() {
    vec3 view = rotation * in_position + translation;
    v_color = in_color;
    v_id = gl_VertexID;
    v_depth = view.z;
    gl_PointSize = point_size;
    gl_Position = project(view);
}
"""

_POINT_FRAGMENT_SHADER = """
#version 330
uniform sampler2D peeled_depth;  // depth of the previous layer (-inf for the first)
in vec3 v_color;
flat in int v_id;
in float v_depth;
layout(location = 0) out vec4 out_color;
layout(location = 1) out int out_id;
layout(location = 2) out vec4 out_barycentric_depth;
void main() {
    vec2 offset = gl_PointCoord * 2.0 - 1.0;   // splat-relative, radius 1 at the rim
    if (dot(offset, offset) >= 1.0) discard;
    if (v_depth <= texelFetch(peeled_depth, ivec2(gl_FragCoord.xy), 0).r) discard;
    out_color = vec4(v_color, 1.0);
    out_id = v_id;
    out_barycentric_depth = vec4(0.0, 0.0, 0.0, v_depth);
}
"""


def to_uint8(image: np.ndarray) -> np.ndarray:
    """InteractVLM's conversion of a [0, 1] float render to 8 bit: ``(image * 255).astype(np.uint8)``
    on PyTorch3D's float32 image, i.e. multiplication in float32, then TRUNCATION (not
    rounding); values outside [0, 255] are clipped first (``astype`` would wrap them).

    Args:
        image: float array in [0, 1] (any shape).

    Returns:
        uint8 array of the same shape.
    """
    scaled = np.asarray(image, np.float32) * np.float32(255.0)
    return np.clip(np.floor(scaled), 0, 255).astype(np.uint8)


def _depth_range(camera: Camera, points: np.ndarray) -> tuple[float, float]:
    """Near and far planes enclosing every point in front of the camera, with margin."""
    z = camera.world_to_view(points)[:, 2]
    z = z[z > 0]
    if z.size == 0:
        return 1e-3, 1.0
    return max(float(z.min()) * 0.5, 1e-4), float(z.max()) * 1.5 + 1e-3


@dataclass(frozen=True)
class PhongLighting:
    """PyTorch3D's ``HardPhongShader`` with one ``PointLights`` light and default materials:
    colour = (ambient + diffuse * max(n.l, 0)) * texel + specular * max(v.r, 0) ** shininess,
    the specular term zero where n.l <= 0. InteractVLM uses ambient 0.5, diffuse 0.3,
    specular 0.2 (white light, shininess 64)."""

    location: tuple[float, float, float]
    ambient: float = 0.5
    diffuse: float = 0.3
    specular: float = 0.2
    shininess: float = 64.0


class GLRasterizer:
    """Rasterises meshes and point clouds into colour, id, barycentric and depth images.

    Args:
        backend: moderngl context backend, "egl" (headless, default) or None for the
            platform default (needs a display).

    Raises:
        RuntimeError: no OpenGL 3.3 context could be created (message says what to install).
    """

    def __init__(self, backend: str | None = "egl"):
        import moderngl

        self._gl = moderngl
        try:
            kwargs = {"backend": backend} if backend else {}
            self.ctx = moderngl.create_standalone_context(require=330, **kwargs)
        except Exception as exc:  # moderngl raises plain Exception subclasses
            raise RuntimeError(
                f"could not create a headless OpenGL 3.3 context ({exc}); install Mesa's EGL "
                "(Debian/Ubuntu: libegl1 libgl1-mesa-dri) or an NVIDIA driver with EGL"
            ) from exc
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.ctx.enable(moderngl.PROGRAM_POINT_SIZE)
        self._mesh_program = self.ctx.program(_MESH_VERTEX_SHADER, _MESH_FRAGMENT_SHADER)
        self._point_program = self.ctx.program(_POINT_VERTEX_SHADER, _POINT_FRAGMENT_SHADER)
        self._targets: dict[int, tuple] = {}
        self.max_point_size = float(self.ctx.info["GL_POINT_SIZE_RANGE"][1])

    @property
    def renderer_name(self) -> str:
        return str(self.ctx.info["GL_RENDERER"])

    def _target(self, size: int):
        if size not in self._targets:
            color = self.ctx.texture((size, size), 4, dtype="f4")  # float, truncated on read-back
            ids = self.ctx.texture((size, size), 1, dtype="i4")
            barycentric_depth = self.ctx.texture((size, size), 4, dtype="f4")
            peeled = self.ctx.texture((size, size), 1, dtype="f4")
            peeled.filter = (self._gl.NEAREST, self._gl.NEAREST)
            depth = self.ctx.depth_renderbuffer((size, size))
            framebuffer = self.ctx.framebuffer([color, ids, barycentric_depth], depth)
            blank = (
                np.ones(size * size * 4, np.float32).tobytes(),  # white background
                np.full(size * size, -1, np.int32).tobytes(),
                np.tile(np.array([0, 0, 0, np.inf], np.float32), size * size).tobytes(),
            )
            self._targets[size] = (framebuffer, (color, ids, barycentric_depth), blank, peeled, depth)
        return self._targets[size]

    def _set_camera(self, program, camera: Camera, near_far) -> None:
        program["rotation"].write(np.asarray(camera.rotation, np.float32).tobytes())
        program["translation"].value = tuple(float(t) for t in camera.translation)
        program["inv_tan"].value = 1.0 / camera.tan_half_fov
        program["near"].value, program["far"].value = near_far

    def _draw(self, program, size: int, content, mode):
        """One pass into cleared targets; returns (color, ids, barycentric+depth), row 0 on top."""
        framebuffer, textures, blank, _, _ = self._target(size)
        framebuffer.use()
        framebuffer.clear(depth=1.0)
        for texture, data in zip(textures, blank):
            texture.write(data)  # glClear is undefined on integer attachments
        buffers = [(self.ctx.buffer(np.ascontiguousarray(data, np.float32).tobytes()), "3f", name)
                   for name, data in content]
        vao = self.ctx.vertex_array(program, buffers)
        try:
            vao.render(mode)
            self.ctx.finish()
        finally:
            vao.release()
            for buffer, _, _ in buffers:
                buffer.release()
        color = to_uint8(np.frombuffer(textures[0].read(), np.float32).reshape(size, size, 4)[::-1, :, :3])
        ids = np.frombuffer(textures[1].read(), np.int32).reshape(size, size)[::-1]
        barycentric_depth = np.frombuffer(textures[2].read(), np.float32).reshape(size, size, 4)[::-1]
        return color.copy(), ids.copy(), barycentric_depth.copy()

    def rasterize_mesh(self, *args, **kwargs) -> tuple[np.ndarray, MeshFragments]:
        """See :meth:`_rasterize_mesh`; runs with this renderer's OpenGL context made current
        (several renderers may live in one thread)."""
        with self.ctx:
            return self._rasterize_mesh(*args, **kwargs)

    def rasterize_points(self, *args, **kwargs) -> list[PointFragments]:
        """See :meth:`_rasterize_points`; runs with this renderer's OpenGL context current."""
        with self.ctx:
            return self._rasterize_points(*args, **kwargs)

    def _rasterize_mesh(
        self,
        vertices: np.ndarray,
        faces: np.ndarray,
        camera: Camera,
        vertex_colors: np.ndarray | None = None,
        lighting: PhongLighting | None = None,
        vertex_normals: np.ndarray | None = None,
    ) -> tuple[np.ndarray, MeshFragments]:
        """Render a triangle mesh.

        Args:
            vertices: (V, 3) world positions (mesh units); faces: (F, 3) vertex ids.
            camera: the view; its image_size sets the output size S.
            vertex_colors: (V, 3) RGB in [0, 1], interpolated over faces; white if None.
            lighting: Phong lighting, or None for the unlit interpolated vertex colours.
            vertex_normals: (V, 3) normals for the lighting (required with ``lighting``).

        Returns:
            color: (S, S, 3) uint8 RGB, white background, quantised by truncation as InteractVLM's
            renders are (:func:`to_uint8`); fragments: face ids, barycentric
            coordinates and view depth per pixel.

        Raises:
            ValueError: lighting without vertex normals.
        """
        vertices = np.asarray(vertices, np.float32)
        faces = np.asarray(faces, np.int64)
        if vertex_colors is None:
            vertex_colors = np.ones_like(vertices)
        if lighting is not None and vertex_normals is None:
            raise ValueError("Phong lighting needs vertex normals")
        normals = np.zeros_like(vertices) if vertex_normals is None else np.asarray(vertex_normals, np.float32)
        program = self._mesh_program
        self._set_camera(program, camera, _depth_range(camera, vertices))
        program["phong"].value = int(lighting is not None)
        if lighting is not None:
            program["light_location"].value = tuple(float(x) for x in lighting.location)
            program["camera_centre"].value = tuple(float(x) for x in camera.centre)
            for name in ("ambient", "diffuse", "specular", "shininess"):
                program[name].value = float(getattr(lighting, name))
        content = [
            ("in_position", vertices[faces].reshape(-1, 3)),
            ("in_normal", normals[faces].reshape(-1, 3)),
            ("in_corner", np.tile(np.eye(3, dtype=np.float32), (len(faces), 1))),
            ("in_color", np.asarray(vertex_colors, np.float32)[faces].reshape(-1, 3)),
        ]
        color, ids, barycentric_depth = self._draw(program, camera.image_size, content, self._gl.TRIANGLES)
        barycentric = clamp_barycentric(barycentric_depth[:, :, :3], ids >= 0)
        return color, MeshFragments(ids, barycentric, np.ascontiguousarray(barycentric_depth[:, :, 3]))

    def _rasterize_points(
        self, points: np.ndarray, camera: Camera, radius: float, layers: int = 1
    ) -> list[PointFragments]:
        """Rasterise a point cloud as screen-space disc splats of a constant NDC radius.

        Args:
            points: (N, 3) world positions; camera: the view.
            radius: splat radius in NDC units (PyTorch3D's ``PointsRasterizationSettings.radius``;
                InteractVLM uses 0.05): a pixel centre is covered when its NDC distance to the
                projected point is below ``radius``.
            layers: K, how many covering points to return per pixel, nearest first
                (PyTorch3D's ``points_per_pixel``), found by depth peeling: one pass per layer.

        Returns:
            K point fragments; layer k holds each pixel's k-th nearest covering point.

        Raises:
            ValueError: a splat larger than the OpenGL implementation's maximum point size.
        """
        points = np.asarray(points, np.float32)
        size = camera.image_size
        diameter_px = 2.0 * radius * size / 2.0
        if diameter_px > self.max_point_size:
            raise ValueError(
                f"splat diameter {diameter_px:.0f} px exceeds this OpenGL's maximum point size "
                f"{self.max_point_size:.0f} px; use a smaller radius or image size"
            )
        program = self._point_program
        self._set_camera(program, camera, _depth_range(camera, points))
        program["point_size"].value = diameter_px
        peeled = self._target(size)[3]
        peeled.write(np.full(size * size, -np.inf, np.float32).tobytes())
        peeled.use(location=0)
        program["peeled_depth"].value = 0
        content = [("in_position", points), ("in_color", np.ones_like(points))]
        result = []
        for _ in range(layers):
            _, ids, barycentric_depth = self._draw(program, size, content, self._gl.POINTS)
            depth = np.ascontiguousarray(barycentric_depth[:, :, 3])
            result.append(PointFragments(ids, depth))
            if not (ids >= 0).any():
                break
            peeled.write(np.where(ids >= 0, depth, np.inf).astype(np.float32)[::-1].tobytes())
        while len(result) < layers:
            result.append(result[-1])  # all-background layers
        return result

    def release(self) -> None:
        """Free the OpenGL context and its framebuffers."""
        with self.ctx:
            self._release_targets()
        self.ctx.release()

    def _release_targets(self) -> None:
        for framebuffer, textures, _, peeled, depth in self._targets.values():
            framebuffer.release()
            for texture in (*textures, peeled, depth):
                texture.release()
        self._targets.clear()
