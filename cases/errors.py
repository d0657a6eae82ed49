class CaseWorkflowError(Exception):
    """Base for refusals of the case workflow; the message is shown to the person as it is."""


class TransitionConflict(CaseWorkflowError):
    """The case's state no longer allows the transition, usually because someone else moved it first."""


class TransitionRefused(CaseWorkflowError):
    """The state allows the transition, but a guard blocks it (missing evidence, approval, ...)."""

    def __init__(self, transition: str, refusals: list[str]) -> None:
        self.transition = transition
        self.refusals = refusals
        super().__init__(" ".join(refusals))
