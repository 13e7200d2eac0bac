"""The working-day calendar (调休) and the statutory clocks of the Administrative Licensing Law.

``workdays`` and ``clock`` are pure (no I/O) and work on a ``CalendarSnapshot``; ``sources`` knows
where calendar data comes from; ``service`` loads snapshots from the database and ``routes`` exposes
the admin API and the public calculators.

How a deadline is computed (Art. 82; Civil Code arts. 201, 203), worked example: accepted on Friday
2021-09-17 with 20 working days to decide. The start day is not counted. Saturday 09-18 was a 调休
working day (1); 09-19..21 were the Mid-autumn holiday; 09-22..24 (2–4); Sunday 09-26 was worked (5);
09-27..30 (6–9); 10-01..07 National Day; 10-08 (10); Saturday 10-09 was worked (11); 10-11..15
(12–16); 10-18..21 (17–20): due 2021-10-21. An expert review (Art. 45) from 09-22 to 09-29 takes the
six working days in (09-22, 09-29] off the clock: due 2021-10-29. A ten-day extension (Art. 42)
then gives 2021-11-12. Dates in a year whose official schedule is not yet published are provisional
(the statutory holidays of the 全国年节及纪念日放假办法 with their 补假, computed in ``statutory``;
no 调休) and every answer that crosses one says so.
"""
