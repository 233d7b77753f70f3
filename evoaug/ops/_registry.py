"""The op registry: :class:`OpSpec`, :func:`register_op`, :func:`get_op`, :func:`available_ops`.

An op is a per-sample batched kernel ``fn(images, magnitudes) -> images`` where ``images`` is a
float tensor ``[B, C, H, W]`` in ``[0, 1]`` and ``magnitudes`` a float tensor ``[B]`` (one magnitude
per image). Ops that need randomness beyond the magnitude (cutout position, noise) also accept a
keyword-only ``generator``. The op's range ``(low, high, signed)`` is declared once, here;
:meth:`OpSpec.magnitude` defines how a normalized level in ``[0, 1]`` becomes a magnitude
(policies apply the same float32 formula to all ops of a batch at once; tests pin the two
bit for bit).

An affine op (a warp by one ``2 x 3`` matrix per image) may also declare ``affine``: a function
``affine(magnitudes, height, width) -> matrices`` from magnitudes ``[B]`` (float, on the images'
device, in their dtype) to inverse affine matrices ``[B, 2, 3]`` in centred pixel units, as taken
by :func:`evoaug.ops.warp_affine`. Its kernel must then equal
``warp_affine(images, affine(magnitudes, H, W))``: a policy gathers the images of all affine ops
at one gene position and warps them with a single ``warp_affine`` call instead of calling each
op's kernel. The built-in ShearX, ShearY, TranslateX, TranslateY, Rotate and Zoom declare it.

A kernel that warps may accept a keyword-only ``interpolation`` (``"bilinear"`` or
``"nearest"``): policies pass theirs to it (the built-in Perspective and the affine ops take
it; the fused warp of affine ops uses the policy's interpolation in any case).

An op may also declare a ``uint8`` kernel ``uint8(images, magnitudes) -> images`` on ``uint8``
images, returning new ``uint8`` images equal bit for bit to the float kernel's rounded output,
``round(fn(images / 255, magnitudes) * 255)``: policies then augment ``uint8`` images with it
directly, without the float round trip. The built-in Posterize, Solarize, Equalize and Invert
declare one (:mod:`evoaug.ops._uint8`).
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, overload

import torch

from evoaug.exceptions import ConfigError, OpError, UnknownOpError

__all__ = [
    "AffineFn",
    "OpFn",
    "OpSpec",
    "Uint8Fn",
    "available_ops",
    "get_op",
    "register_op",
    "unregister_op",
]

OpFn = Callable[..., torch.Tensor]
AffineFn = Callable[[torch.Tensor, int, int], torch.Tensor]
Uint8Fn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_REGISTRY: dict[str, OpSpec] = {}
_VERSION = [0]  # bumped by every (un)registration, so compiled policies know to recompile


def registry_version() -> int:
    """A counter that changes whenever an op is registered, replaced or unregistered."""
    return _VERSION[0]


@dataclass(frozen=True)
class OpSpec:
    """One augmentation op: its kernel and the range its level maps to.

    Args:
        name: Unique op name, as stored in policy files (e.g. ``"ShearX"``).
        fn: Batched kernel ``fn(images, magnitudes[, generator=g]) -> images``.
        low: Magnitude at level 0.
        high: Magnitude at level 1. ``low == high`` declares an op without a magnitude
            (``Invert``, ``Equalize``): its level is ignored.
        signed: When true, each image's magnitude is negated with probability 1/2.
        description: One line for the op table in the docs.
        takes_generator: Whether ``fn`` accepts the ``generator`` keyword (set by
            :func:`register_op` from the kernel's signature).
        takes_interpolation: Whether ``fn`` accepts the ``interpolation`` keyword (set by
            :func:`register_op` from the kernel's signature; ``**kwargs`` does not count).
        affine: For affine ops, ``affine(magnitudes, height, width) -> [B, 2, 3]`` inverse
            matrices in centred pixel units, such that ``fn(images, magnitudes)`` equals
            ``warp_affine(images, affine(magnitudes, H, W))``; policies then fuse the warps of
            several affine ops into one. ``None`` for other ops.
        uint8: Optional kernel on ``uint8`` images, ``uint8(images, magnitudes) -> images``,
            equal bit for bit to ``fn``'s output rounded to 8 bits; policies apply it to
            ``uint8`` images instead of ``fn``. ``None`` when the op has none.

    Example:
        >>> from evoaug.ops import get_op
        >>> spec = get_op("Rotate")
        >>> spec.low, spec.high, spec.signed
        (0.0, 135.0, True)
        >>> spec.magnitude(0.2)
        27.0

    """

    name: str
    fn: OpFn = field(repr=False)
    low: float = 0.0
    high: float = 1.0
    signed: bool = False
    description: str = ""
    takes_generator: bool = field(default=False, repr=False)
    takes_interpolation: bool = field(default=False, repr=False)
    affine: AffineFn | None = field(default=None, repr=False)
    uint8: Uint8Fn | None = field(default=None, repr=False)

    @property
    def has_magnitude(self) -> bool:
        """Whether the level changes what the op does."""
        return self.low != self.high

    @overload
    def magnitude(self, level: float) -> float: ...
    @overload
    def magnitude(self, level: torch.Tensor) -> torch.Tensor: ...
    def magnitude(self, level: torch.Tensor | float) -> torch.Tensor | float:
        """Map normalized levels in ``[0, 1]`` to magnitudes: ``low + level * (high - low)``.

        This defines the level-to-magnitude conversion of evoaug (a policy computes the same
        float32 formula for all ops of a batch at once). A Python number gives a Python float
        (double precision); a tensor gives a tensor of its dtype (float32 for integer tensors).
        Signs are applied by the caller.
        """
        if isinstance(level, torch.Tensor):
            if not level.is_floating_point():
                level = level.float()
            return self.low + level * (self.high - self.low)
        return self.low + float(level) * (self.high - self.low)

    def level_of(self, magnitude: float) -> float:
        """Inverse of :meth:`magnitude`: the level at which the op reaches ``magnitude``.

        Used to place published policies (AutoAugment, RandAugment) in the level space.

        Raises:
            ConfigError: The op has no magnitude, or ``magnitude`` lies outside its range.

        """
        if not self.has_magnitude:
            raise ConfigError(f"op {self.name!r} has no magnitude; its level is always 0")
        level = (float(magnitude) - self.low) / (self.high - self.low)
        if not -1e-6 <= level <= 1.0 + 1e-6:  # float32 magnitudes round by ~1e-7
            raise ConfigError(
                f"magnitude {magnitude!r} is outside op {self.name!r}'s range "
                f"[{self.low}, {self.high}]"
            )
        return min(max(level, 0.0), 1.0)

    def matrices(self, magnitudes: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The op's inverse affine matrices ``[B, 2, 3]`` for ``magnitudes`` ``[B]``.

        ``magnitudes`` must already be float, on the images' device and in their dtype.

        Raises:
            OpError: The op declares no ``affine``, or it raised or did not return a tensor
                of shape ``[B, 2, 3]`` (another dtype is cast to the magnitudes').

        """
        affine = self.affine
        if affine is None:
            raise OpError(f"op {self.name!r} is not affine (it declares no `affine`)")
        shape = (magnitudes.shape[0], 2, 3)
        return self._checked(
            "affine", lambda: affine(magnitudes, height, width), shape, magnitudes.dtype
        )

    def apply_uint8(self, images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        """Apply the op's ``uint8`` kernel to ``uint8`` images ``[B, C, H, W]``.

        Raises:
            OpError: The op declares no ``uint8`` kernel, or it raised or did not return a
                ``uint8`` tensor of the images' shape.

        """
        uint8 = self.uint8
        if uint8 is None:
            raise OpError(f"op {self.name!r} has no `uint8` kernel")
        return self._checked(
            "uint8", lambda: uint8(images, magnitudes), images.shape, torch.uint8, exact=True
        )

    def __call__(
        self,
        images: torch.Tensor,
        magnitudes: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        interpolation: str | None = None,
    ) -> torch.Tensor:
        """Apply the op to ``images`` ``[B, C, H, W]`` with one magnitude per image.

        ``interpolation`` reaches kernels that take it (``None``: the kernel's default); other
        kernels ignore it.

        Raises:
            OpError: The kernel raised, or returned a tensor of another shape or dtype.

        """
        kwargs: dict[str, Any] = {"generator": generator} if self.takes_generator else {}
        if interpolation is not None and self.takes_interpolation:
            kwargs["interpolation"] = interpolation
        return self._checked(
            "", lambda: self.fn(images, magnitudes, **kwargs), images.shape, images.dtype
        )

    def _checked(
        self,
        what: str,
        call: Callable[[], object],
        shape: tuple[int, ...],
        dtype: torch.dtype,
        *,
        exact: bool = False,
    ) -> torch.Tensor:
        """Run one of the op's functions (``what``: ``""`` for the kernel) and check its result.

        The result must be a tensor of ``shape``; of ``dtype`` when ``exact``, else it is cast.

        Raises:
            OpError: The function raised or returned something else; the message names the op
                and the function.

        """
        who = f"op {self.name!r}" + (f": `{what}`" if what else "")
        try:
            out = call()
        except Exception as err:
            raise OpError(f"{who} raised {type(err).__name__}: {err}") from err
        shape = tuple(shape)
        if isinstance(out, torch.Tensor) and out.shape == shape:
            if out.dtype == dtype:
                return out
            if not exact:
                return out.to(dtype)
        if not isinstance(out, torch.Tensor):
            got = type(out).__name__
        else:
            got = f"{out.dtype} {tuple(out.shape)}" if exact else str(tuple(out.shape))
        kind = f"a {dtype} tensor" if exact else "a tensor"
        raise OpError(f"{who} must return {kind} of shape {shape}, got {got}")


def _check_signature(name: str, fn: object) -> tuple[bool, bool]:
    """Validate a kernel's signature; return whether it accepts ``generator``, ``interpolation``."""
    if not callable(fn):
        raise ConfigError(f"op {name!r}: the kernel must be callable, got {type(fn).__name__}")
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError) as err:  # builtins without a signature
        raise ConfigError(f"op {name!r}: cannot read the kernel's signature ({err})") from err
    positional = [
        p
        for p in params.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    var_positional = any(p.kind is p.VAR_POSITIONAL for p in params.values())
    if len(positional) != 2 and not (var_positional and len(positional) < 2):
        got = ", ".join(params) or "no parameters"
        raise ConfigError(
            f"op {name!r}: the kernel must take exactly two positional parameters "
            f"`(images, magnitudes)`, got ({got})"
        )
    takes_generator = "generator" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    interpolation = params.get("interpolation")
    takes_interpolation = interpolation is not None and interpolation.kind in (
        interpolation.KEYWORD_ONLY,
        interpolation.POSITIONAL_OR_KEYWORD,
    )
    return takes_generator, takes_interpolation


def _check_range(name: str, low: object, high: object) -> tuple[float, float]:
    values = []
    for label, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(
                f"op {name!r}: `{label}` must be a finite number, got {value!r} "
                f"({type(value).__name__})"
            )
        if not math.isfinite(value):
            raise ConfigError(f"op {name!r}: `{label}` must be a finite number, got {value!r}")
        values.append(float(value))
    return values[0], values[1]


def register_op(
    name: str,
    *,
    low: float = 0.0,
    high: float = 1.0,
    signed: bool = False,
    description: str = "",
    replace: bool = False,
    affine: AffineFn | None = None,
    uint8: Uint8Fn | None = None,
) -> Callable[[OpFn], OpFn]:
    """Register a batched kernel as an augmentation op usable in policies and search.

    Args:
        name: Unique name; policy files refer to the op by it.
        low: Magnitude at level 0 (usually the identity).
        high: Magnitude at level 1. Equal to ``low`` for ops without a magnitude.
        signed: Negate each image's magnitude with probability 1/2.
        description: One line shown in the op table.
        replace: Allow replacing an op already registered under ``name``.
        affine: For an op that warps each image by an affine map: a function
            ``affine(magnitudes, height, width) -> matrices`` giving the inverse matrices
            ``[B, 2, 3]`` (output pixel -> input pixel, in pixel units centred on the image) for
            float magnitudes ``[B]``. The kernel must equal
            ``evoaug.ops.warp_affine(images, affine(magnitudes, H, W))``: policies
            warp the images of all affine ops at a gene position with one call and do not call
            the kernel. Such a kernel cannot take a ``generator``.

    A kernel that warps may take a keyword ``interpolation`` (``"bilinear"`` or
    ``"nearest"``, see :data:`evoaug.ops.INTERPOLATIONS`); policies then pass it theirs.
        uint8: Optional kernel ``uint8(images, magnitudes) -> images`` on ``uint8`` images
            ``[B, C, H, W]`` (magnitudes as for the kernel), returning new ``uint8`` images
            equal bit for bit to ``round(kernel(images / 255, magnitudes) * 255)`` without
            modifying ``images``; policies apply it to ``uint8`` batches, skipping the float
            round trip. Not for ops whose kernel takes a ``generator`` or that declare
            ``affine``.

    Returns:
        A decorator that registers the kernel and returns it unchanged.

    Raises:
        ConfigError: The name is taken (and ``replace`` is false) or not a non-empty string,
            the range is not finite, the kernel does not take ``(images, magnitudes)``,
            ``affine`` or ``uint8`` is given but not callable, both ``affine`` and a kernel
            taking ``generator`` are given, or ``uint8`` with ``affine`` or such a kernel.

    Example:
        >>> import evoaug, torch
        >>> @evoaug.register_op("Darken", low=0.0, high=0.5)
        ... def darken(images, magnitudes):
        ...     return images * (1 - magnitudes.view(-1, 1, 1, 1))
        >>> "Darken" in evoaug.available_ops()
        True
        >>> evoaug.ops.unregister_op("Darken")

    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"`name` must be a non-empty string, got {name!r}")
    if not isinstance(signed, bool):
        raise ConfigError(f"op {name!r}: `signed` must be a bool, got {signed!r}")
    lo, hi = _check_range(name, low, high)
    if affine is not None and not callable(affine):
        raise ConfigError(
            f"op {name!r}: `affine` must be a function (magnitudes, height, width) -> "
            f"[B, 2, 3] matrices, or None; got {type(affine).__name__}"
        )
    if uint8 is not None and not callable(uint8):
        raise ConfigError(
            f"op {name!r}: `uint8` must be a function (images, magnitudes) -> uint8 images, "
            f"or None; got {type(uint8).__name__}"
        )
    if uint8 is not None and affine is not None:
        raise ConfigError(
            f"op {name!r}: an op with `affine` is warped in float; it cannot declare `uint8`"
        )
    if name in _REGISTRY and not replace:
        raise ConfigError(
            f"op {name!r} is already registered; choose another name or pass `replace=True`"
        )

    def decorator(fn: OpFn) -> OpFn:
        takes_generator, takes_interpolation = _check_signature(name, fn)
        if affine is not None and takes_generator:
            raise ConfigError(
                f"op {name!r}: an op with `affine` is fully described by its matrices; "
                "its kernel cannot take a `generator`"
            )
        if uint8 is not None and takes_generator:
            raise ConfigError(
                f"op {name!r}: a `uint8` kernel must give exactly the float kernel's result; "
                "the kernel cannot take a `generator`"
            )
        _VERSION[0] += 1
        _REGISTRY[name] = OpSpec(
            name=name,
            fn=fn,
            low=lo,
            high=hi,
            signed=signed,
            description=description,
            takes_generator=takes_generator,
            takes_interpolation=takes_interpolation,
            affine=affine,
            uint8=uint8,
        )
        return fn

    return decorator


def unregister_op(name: str) -> None:
    """Remove a registered op (mainly for tests and notebooks).

    Raises:
        UnknownOpError: No op is registered under ``name``.

    """
    get_op(name)
    del _REGISTRY[name]
    _VERSION[0] += 1


def get_op(name: str) -> OpSpec:
    """Return the :class:`OpSpec` registered under ``name``.

    Raises:
        UnknownOpError: The name is unknown; the message lists the available ops.

    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        pass
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownOpError(
        f"unknown op {name!r}.{hint} Available ops: {', '.join(sorted(_REGISTRY))}"
    )


def available_ops() -> list[str]:
    """Names of all registered ops, sorted.

    Example:
        >>> import evoaug
        >>> len(evoaug.available_ops()) >= 20
        True

    """
    return sorted(_REGISTRY)
