"""Storage-level refusals that callers turn into replies or HTTP answers."""


class StorageError(Exception):
    """Base class for refusals raised by repository functions."""


class InsufficientPoints(StorageError):
    def __init__(self, balance: int, wanted: int) -> None:
        super().__init__(f"balance {balance} is below {wanted}")
        self.balance = balance
        self.wanted = wanted


class MemberMerged(StorageError):
    """The member was folded into another (accounts linked) while this transaction ran: what
    it wrote is rolled back, and the caller tries again as the merged member."""

    def __init__(self, member_id: int) -> None:
        super().__init__(f"member {member_id} was merged into another")
        self.member_id = member_id
