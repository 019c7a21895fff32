"""Storage-level refusals that callers turn into replies or HTTP answers."""


class StorageError(Exception):
    """Base class for refusals raised by repository functions."""


class InsufficientPoints(StorageError):
    def __init__(self, balance: int, wanted: int) -> None:
        super().__init__(f"balance {balance} is below {wanted}")
        self.balance = balance
        self.wanted = wanted
