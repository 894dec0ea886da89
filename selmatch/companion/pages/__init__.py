"""One module per analysis page: its data (the jobs it runs), figures, tables and conclusions (``claims`` for
the claims page). A notebook imports its page as ``page``; see the library page's "Add a page in five steps"."""
