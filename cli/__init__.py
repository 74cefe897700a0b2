"""``byom``, the command line: az ml's verbs over a Workspace. A front end beside the console; core imports neither."""
