"""Per-application statutory clocks (docs/architecture.md): stored as budget + ledger, derived on demand.

``models`` holds the clock rows and their append-only ledger; ``service`` writes them in the
transaction of each lifecycle event (``ClockKeeper``) and re-derives them when a year's schedule is
loaded (``CalendarChange``); ``timers`` fires deemed acceptance, yellow and red exactly once;
``views`` derives what staff and applicants see and the timeliness statistics; ``routes`` exposes
them. What happens during 补正 is documented in ``service`` and in ``DEADLINES.md``.
"""
