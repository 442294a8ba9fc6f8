"""The fast in-process engine: shared prefix caches, a sample trie per prompt, batch-invariant attention."""
