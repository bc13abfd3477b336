"""The station registry: records, vocabulary, import and export."""
