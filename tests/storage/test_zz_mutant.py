import pytest
from hypothesis import HealthCheck, given, settings
from storage import ledger
from tests.storage.test_ledger_property import OPERATIONS, run_example

MUT = {"v": None}

@pytest.fixture(params=["fifo", "noexpire", "cap"])
def mutant(request, monkeypatch):
    if request.param == "fifo":
        orig = ledger._consume
        async def consume(session, member_id, amount, now, first_lot=None):
            from sqlalchemy import select, update
            from storage.models import LedgerEntry
            lots = (await session.execute(select(LedgerEntry.id, LedgerEntry.remaining).where(LedgerEntry.member_id==member_id, LedgerEntry.remaining>0, LedgerEntry.expires_at>now).order_by(LedgerEntry.id))).all()
            left = amount
            for lot_id, rem in lots:
                take = min(left, rem)
                if take:
                    await session.execute(update(LedgerEntry).where(LedgerEntry.id==lot_id).values(remaining=LedgerEntry.remaining-take))
                left -= take
        monkeypatch.setattr(ledger, "_consume", consume)
    elif request.param == "noexpire":
        orig = ledger.expire_due
        async def exp(session, member_id, now):
            await ledger.lock_member(session, member_id)
            return 0
        monkeypatch.setattr(ledger, "expire_due", exp)
    else:
        orig = ledger.balance_of
        async def bal(session, member_id):
            return 10**6
        monkeypatch.setattr(ledger, "balance_of", bal)
    return request.param

@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(operations=OPERATIONS)
async def test_mutant(mutant, db, operations):
    await run_example(db, operations)
