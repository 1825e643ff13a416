"""Interview coach for deep-learning and machine-learning interviews.

The pipeline, one module each:

    bank / glossary  ->  ingest  ->  embeddings  ->  index  ->  retrieve
                                                            ->  grade -> interview
                                                            ->  chat
    cli and webapp are thin shells over these; evaluate measures them.
"""

__version__ = "0.1.0"
