"""Per-application statutory clocks (docs/architecture.md): stored as budget + ledger, derived on demand.

``models`` holds the clock rows and their append-only ledger; ``derivation`` what a clock is (the
item's terms, the spec, the ledger read back) and how it is derived; ``calendar_cache`` the national
calendar kept in the process for the lifecycle actions; ``service`` writes the clocks in the
transaction of each lifecycle event (``ClockKeeper``); ``calendar_change`` re-derives them when a
year's schedule is loaded (``CalendarChange``); ``timers`` fires deemed acceptance, yellow and red
exactly once; ``views`` derives what staff and applicants see and the timeliness statistics;
``routes`` exposes them. What happens during 补正 is documented in ``service`` and in
``DEADLINES.md``.
"""
