"""Where artifacts come from: fetchers (git), ignore rules, signature verification, and the
artifact cache every reconciler shares."""
