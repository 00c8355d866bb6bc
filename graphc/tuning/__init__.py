"""Auto-tuning graphc's kernels with MetaSchedule into a persistent database that compile reads.

database.py: where records live and how compile looks a kernel up; tune.py: `graphc tune`;
progress.py: the progress bar.
"""
