"""Alerts that say what to do: ledger events turned into messages (``messages``), recorded in the ledger
and delivered through Apprise URLs on their own thread (``delivery``), by a worker that follows the
ledger's journal (``worker``); and the dead-man's switch (``heartbeat``). Nothing here can block or
stop trading: a dead channel costs its own thread's time, never the loop's."""
