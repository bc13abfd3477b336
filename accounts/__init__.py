"""Console accounts: users with a role, their passwords (argon2 hashes only), their sessions and the sign-in
throttle, all kept in the database so every worker process of a server sees the same state.

- ``passwords``: hashing and checking a password (argon2id, the library's current parameters).
- ``users``: who may sign in (``admin``, ``staff``, ``planner``), created, listed, disabled, enabled, re-passworded.
- ``sessions``: an opaque random token per sign-in (only its SHA-256 is stored) with a CSRF token; idle and absolute
  expiry from the settings; all of a user's sessions end when the user is disabled or the password changes.
- ``throttle``: failed sign-ins counted per account and per client address within a window.
- ``signin``: the sign-in itself: the throttle is asked first, then the password is checked.

Every function takes an open connection (the caller owns the transaction) and, where time matters, the instant
``now`` (an aware ``datetime``), so a test moves the clock by passing another instant instead of sleeping.
"""
