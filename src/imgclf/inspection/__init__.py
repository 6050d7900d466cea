"""imgclf inspect: a data set looked at before training (counts, sizes, unreadable files,
duplicates and leaks, likely label errors), written as a self-contained report and a CSV that
data.exclude and data.relabel apply."""
