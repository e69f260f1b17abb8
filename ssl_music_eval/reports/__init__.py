"""Turning results into something to read: a run's report (``report``), its first-screen summary
(``report_summary``), runs over seeds (``report_seeds``), named subspaces (``report_subspaces``), tempo
translation (``translation_report``) and the Markdown/HTML document they write into (``report_doc``)."""
