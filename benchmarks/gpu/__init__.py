"""How well cnnsearch uses a GPU: throughput of packed, compiled, mixed-precision trials
(``throughput``), the card's peak for reference (``peaks``), and the one-command GPU check
(``check``, ``make gpu-check``)."""
