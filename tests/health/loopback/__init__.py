"""A test-only app for the processes a test starts: it connects lianxin.health's signals to a
loopback HTTP receiver (LIANXIN_TEST_RECEIVER), as the escalation channels will connect them to
their transports, so a test sees that a real web or monitor process sent them."""
