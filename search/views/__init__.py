"""What studies look like: the results table, the HTML report, LRRT figures, the text of
the dashboard notes, progress displays and the dashboard server. A view reads; it never
writes to a study."""
