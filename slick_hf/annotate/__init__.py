"""SliCK annotation: questions + an engine -> slick_* columns, in a folder laid out as a Hub dataset."""
