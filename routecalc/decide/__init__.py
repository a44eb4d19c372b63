"""Decision support on top of a comparison: how sure the answer is (``uncertainty``) and what would change it."""
