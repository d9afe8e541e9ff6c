"""The mail bridge: ca@ and appeals@ over IMAP into case threads, nothing lost or doubled."""
