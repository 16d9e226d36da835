"""Solid body models: a posed skeleton (joint positions and global rotations) as capsules and ellipsoids.

Three models: the DeepMimic ``humanoid`` (faces local ``+x``, right side ``+z``, y up), the ``hand21`` hand (palm
facing local ``+z``, fingers along ``+y``, thumb ``+x``) and a generic one (a capsule per bone) for any other
skeleton. Each model has an :class:`Appearance` (colours and thickness) drawn once per subject.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from kinepose.render.config import PART_NAMES, RenderConfig
from kinepose.render.raster import Primitive
from kinepose.skeleton import Skeleton

__all__ = ["Appearance", "BodyPart", "body_primitives", "model_kind", "sample_appearance"]

P = {name: i for i, name in enumerate(PART_NAMES)}

HUMANOID_JOINTS = (
    "root", "chest", "neck", "right_hip", "right_knee", "right_ankle", "right_shoulder", "right_elbow",
    "right_wrist", "left_hip", "left_knee", "left_ankle", "left_shoulder", "left_elbow", "left_wrist",
)  # fmt: skip
HAND_FINGERS = ("thumb", "index", "middle", "ring", "little")

_SKIN = np.array([[0.98, 0.84, 0.72], [0.93, 0.76, 0.62], [0.80, 0.60, 0.45], [0.63, 0.44, 0.31], [0.45, 0.30, 0.20]])
_HAIR = np.array([[0.08, 0.06, 0.05], [0.25, 0.15, 0.08], [0.55, 0.40, 0.20], [0.85, 0.75, 0.50], [0.5, 0.5, 0.5]])


@dataclass
class Appearance:
    """Colours (RGB in ``[0, 1]``) and size factors of one subject."""

    skin: np.ndarray
    hair: np.ndarray
    shirt: np.ndarray
    trousers: np.ndarray
    shoes: np.ndarray
    toes: np.ndarray
    nose: np.ndarray
    palm: np.ndarray
    back_of_hand: np.ndarray
    sleeve: np.ndarray
    thickness: float
    group_scale: dict[str, float]


@dataclass
class BodyPart:
    """A primitive in world coordinates and the joints it belongs to (for visibility)."""

    prim: Primitive
    joints: tuple[int, ...]


def _random_color(rng: np.random.Generator, sat: tuple[float, float] = (0.2, 0.9)) -> np.ndarray:
    h, s, v = rng.random(), rng.uniform(*sat), rng.uniform(0.25, 0.95)
    return np.array(colorsys.hsv_to_rgb(h, s, v))


def sample_appearance(rng: np.random.Generator, config: RenderConfig) -> Appearance:
    """Draw one subject's clothing colours, skin tone and thickness (a fixed number of draws from ``rng``)."""
    skin = np.clip(_SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.92, 1.08, 3), 0, 1)
    hair = np.clip(_HAIR[rng.integers(len(_HAIR))] * rng.uniform(0.85, 1.15, 3), 0, 1)
    shirt, trousers, shoes = _random_color(rng), _random_color(rng), _random_color(rng, (0.0, 0.6))
    toes = np.clip(1.0 - shoes * 0.8, 0, 1)  # contrasting toe caps
    nose = np.clip(skin * np.array([1.0, 0.55, 0.5]) + np.array([0.1, 0, 0]), 0, 1)
    palm = np.clip(skin * 1.1 + np.array([0.05, 0.0, 0.0]), 0, 1)
    back = np.clip(skin * 0.7, 0, 1)
    long_sleeves = rng.random() < 0.5
    thickness = rng.uniform(*config.thickness)
    groups = ("torso", "arm", "leg", "head", "hand", "foot", "finger")
    jit = rng.uniform(1 - config.part_jitter, 1 + config.part_jitter, len(groups))
    return Appearance(
        skin=skin,
        hair=hair,
        shirt=shirt,
        trousers=trousers,
        shoes=shoes,
        toes=toes,
        nose=nose,
        palm=palm,
        back_of_hand=back,
        sleeve=shirt if long_sleeves else skin,
        thickness=float(thickness),
        group_scale={g: float(thickness * j) for g, j in zip(groups, jit, strict=True)},
    )


def model_kind(skeleton: Skeleton) -> str:
    """``"humanoid"``, ``"hand"`` or ``"generic"`` from the joint names."""
    names = tuple(skeleton.joint_names)
    if names == HUMANOID_JOINTS:
        return "humanoid"
    if len(names) == 21 and names[0] == "wrist" and all(f"{f}_tip" in names for f in HAND_FINGERS):
        return "hand"
    return "generic"


def _capsule(a: np.ndarray, b: np.ndarray, r: float, color: np.ndarray, part: str, joints: tuple[int, ...]) -> BodyPart:
    return BodyPart(Primitive("capsule", a, np.full(3, r), color, P[part], end=b), joints)


def _ellipsoid(
    c: np.ndarray,
    axes: np.ndarray,
    radii: tuple[float, float, float],
    color: np.ndarray,
    part: str,
    joints: tuple[int, ...],
    tone: tuple[int, float, np.ndarray, str] | None = None,
) -> BodyPart:
    t = None if tone is None else (tone[0], tone[1], tone[2], P[tone[3]])
    return BodyPart(
        Primitive("ellipsoid", c, np.asarray(radii, dtype=np.float64), color, P[part], axes, tone=t), joints
    )


def _humanoid(x: np.ndarray, G: np.ndarray, sk: Skeleton, ap: Appearance) -> list[BodyPart]:
    j = {n: sk.index(n) for n in HUMANOID_JOINTS}
    s = ap.group_scale
    st, sa, sl, sh, sf = s["torso"], s["arm"], s["leg"], s["head"], s["foot"]
    out: list[BodyPart] = []
    root, chest, neck = j["root"], j["chest"], j["neck"]
    Gr, Gc, Gn = G[root], G[chest], G[neck]
    hips = (j["right_hip"], j["left_hip"])
    shoulders = (j["right_shoulder"], j["left_shoulder"])
    # torso: pelvis, abdomen, chest, shoulder girdle
    out.append(_ellipsoid(x[root] + Gr @ [0, 0.02, 0], Gr, (0.11 * st, 0.11 * st, 0.16 * st), ap.trousers,
                          "pelvis", (root, *hips)))  # fmt: skip
    out.append(_capsule(x[root] + Gr @ [0, 0.05, 0], x[chest], 0.105 * st, ap.shirt, "torso", (root, chest)))
    out.append(_ellipsoid(x[chest] + Gc @ [0, 0.1, 0], Gc, (0.11 * st, 0.15 * st, 0.16 * st), ap.shirt, "torso",
                          (chest, neck, *shoulders)))  # fmt: skip
    out.append(_capsule(x[shoulders[0]], x[shoulders[1]], 0.055 * st, ap.shirt, "torso", (chest, neck, *shoulders)))
    for h in hips:
        out.append(_capsule(x[root], x[h], 0.075 * sl, ap.trousers, "pelvis", (root, h)))
    # neck and head: the head follows the neck's global rotation; its front (+x) is the face patch, with a nose
    out.append(_capsule(x[neck] - Gc @ [0, 0.04, 0], x[neck] + Gn @ [0, 0.06, 0], 0.048 * sh, ap.skin, "neck",
                        (neck,)))  # fmt: skip
    head_c = x[neck] + Gn @ [0.015, 0.13 * sh, 0]
    radii = (0.1 * sh, 0.12 * sh, 0.085 * sh)
    out.append(_ellipsoid(head_c, Gn, radii, ap.hair, "head", (neck,), tone=(0, 0.3, ap.skin, "face")))
    out.append(BodyPart(Primitive("sphere", head_c + Gn @ [radii[0], -0.01 * sh, 0], np.full(3, 0.022 * sh),
                                  ap.nose, P["face"]), (neck,)))  # fmt: skip
    # ears on both sides (local z): they show which way the head is turned when it is seen from behind
    for side in (-1.0, 1.0):
        out.append(_ellipsoid(head_c + Gn @ [-0.01 * sh, -0.005 * sh, side * 0.082 * sh], Gn,
                              (0.02 * sh, 0.032 * sh, 0.014 * sh), ap.skin * 0.85, "head", (neck,)))  # fmt: skip
    # arms and hands (the wrists are end sites: their rotation is the forearm's)
    for side in ("right", "left"):
        sh_, el, wr = j[f"{side}_shoulder"], j[f"{side}_elbow"], j[f"{side}_wrist"]
        out.append(_capsule(x[sh_], x[el], 0.046 * sa, ap.shirt, "upper_arm", (sh_, el)))
        out.append(_capsule(x[el], x[wr], 0.037 * sa, ap.sleeve, "forearm", (el, wr)))
        Gw, k = G[wr], s["hand"]
        out.append(
            _ellipsoid(x[wr] + Gw @ [0, -0.07 * k, 0], Gw, (0.045 * k, 0.08 * k, 0.022 * k), ap.skin, "hand", (wr,))
        )
    # legs and feet: each foot is an ellipsoid forward (+x) of the ankle along its global rotation, toes coloured,
    # on a sole
    for side in ("right", "left"):
        hp, kn, an = j[f"{side}_hip"], j[f"{side}_knee"], j[f"{side}_ankle"]
        out.append(_capsule(x[hp], x[kn], 0.068 * sl, ap.trousers, "thigh", (hp, kn)))
        out.append(_capsule(x[kn], x[an], 0.052 * sl, ap.trousers, "shin", (kn, an)))
        Ga = G[an]
        out.append(_ellipsoid(x[an] + Ga @ [0.055, -0.045, 0], Ga, (0.125 * sf, 0.045 * sf, 0.055 * sf), ap.shoes,
                              "foot", (an,), tone=(0, 0.45, ap.toes, "toes")))  # fmt: skip
        # a flat dark sole: its plane shows the roll of the foot about its long axis, which the ellipsoid hides
        sole = Primitive("box", x[an] + Ga @ [0.055, -0.045 - 0.035 * sf, 0], np.array([0.112, 0.011, 0.047]) * sf,
                         ap.shoes * 0.3, P["foot"], Ga)  # fmt: skip
        out.append(BodyPart(sole, (an,)))
    return out


def _hand(x: np.ndarray, G: np.ndarray, sk: Skeleton, ap: Appearance) -> list[BodyPart]:
    w = sk.index("wrist")
    size = float(np.linalg.norm(x[sk.index("middle_mcp")] - x[w])) / 0.097  # 1 for the template hand
    s = ap.group_scale
    Gw = G[w]
    out: list[BodyPart] = []
    mcps = tuple(sk.index(f"{f}_mcp") for f in HAND_FINGERS[1:])
    palm_c = (x[w] + np.mean([x[m] for m in mcps], axis=0)) / 2 + Gw @ [0.004, 0.0, 0.0] * size
    # the palm faces local +z: q[2] > 0 is the palm side, the rest the (darker) back of the hand
    out.append(_ellipsoid(palm_c, Gw, (0.047 * size * s["hand"], 0.055 * size, 0.016 * size * s["hand"]),
                          ap.back_of_hand, "back_of_hand", (w, *mcps), tone=(2, 0.0, ap.palm, "palm")))  # fmt: skip
    out.append(_capsule(x[w], x[w] + Gw @ [0, -0.12 * size, 0], 0.028 * size * s["hand"], ap.sleeve, "forearm", (w,)))
    rf = s["finger"] * size
    for f in HAND_FINGERS:
        chain = [sk.index(n) for n in sk.joint_names if n.startswith(f + "_")]
        start = 0 if f == "thumb" else 1  # thumb: wrist -> cmc is flesh; others: wrist -> mcp is inside the palm
        for k in range(start, len(chain)):
            a = x[w] if k == 0 else x[chain[k - 1]]
            r = (0.012 if f == "thumb" and k <= 1 else 0.0095 - 0.0008 * k) * rf
            parent = w if k == 0 else chain[k - 1]
            out.append(_capsule(a, x[chain[k]], r, ap.skin, "finger", (parent, chain[k])))
    return out


def _generic(x: np.ndarray, G: np.ndarray, sk: Skeleton, ap: Appearance) -> list[BodyPart]:
    lengths = [float(np.linalg.norm(x[c] - x[p])) for c, p in enumerate(sk.parents) if p >= 0]
    r = 0.12 * (float(np.median(lengths)) if lengths else 0.1) * ap.thickness
    out = [BodyPart(Primitive("sphere", x[0], np.full(3, 1.5 * r), ap.shirt, P["torso"]), (0,))]
    for c, p in enumerate(sk.parents):
        if p >= 0:
            out.append(_capsule(x[p], x[c], r, ap.shirt if c % 2 else ap.trousers, "limb", (p, c)))
    return out


def body_primitives(skeleton: Skeleton, joints: np.ndarray, rotmats: np.ndarray, ap: Appearance) -> list[BodyPart]:
    """The world-frame solids of one posed subject (``joints (J, 3)``, global ``rotmats (J, 3, 3)``, float64)."""
    kind = model_kind(skeleton)
    build = {"humanoid": _humanoid, "hand": _hand, "generic": _generic}[kind]
    return build(joints, rotmats, skeleton, ap)


def joint_radii(skeleton: Skeleton, parts: list[BodyPart]) -> np.ndarray:
    """Per-joint radius: the thinnest capsule/sphere touching the joint (for the visibility depth margin)."""
    J = skeleton.num_joints
    out = np.full(J, np.inf)
    for bp in parts:
        r = float(bp.prim.radii.min())
        for j in bp.joints:
            out[j] = min(out[j], r)
    out[~np.isfinite(out)] = 0.03
    return out
