"""Running untrusted generated code: bubblewrap namespaces + rlimits (:mod:`.bwrap` is the policy,
:mod:`.runner` runs programs and classifies how they ended)."""
from .bwrap import Limits
from .runner import Sandbox, SandboxResult


def make_sandbox(timeout_s: float = 3.0, allow_weak: bool = False) -> Sandbox:
    """The factory the engine hands plug-ins through ``RunContext.sandbox_factory``."""
    return Sandbox(Limits(timeout_s=timeout_s), allow_weak=allow_weak)


__all__ = ["Limits", "Sandbox", "SandboxResult", "make_sandbox"]
