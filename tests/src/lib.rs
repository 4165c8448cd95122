//! End-to-end tests of moat live in `tests/e2e`; this library is empty.
