"""Command signing (Ed25519) and authorised audio downloads: keys, tokens, the signer the bus uses."""
