"""What the bot does on its own: the outbox sender and the scheduled jobs.

One module per job, `schedule.py` their registry and periods, `embedded.py` running them in
`memberbot serve` (asyncio, no Redis), `worker.py` on arq for `memberbot worker`. Imports
bot.core and storage only: member-facing texts come in through `texts.NudgeTexts`.
"""
