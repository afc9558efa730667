"""The audit log: every broadcast, approval, schedule change, device command and sign-in; append-only."""
