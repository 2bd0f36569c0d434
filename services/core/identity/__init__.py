"""Organisation identity: the signed network directory, the development PKI and the on-disk keystore.

Entry points others call: ``keystore.load_directory`` (the CA-verified directory), ``Directory.signing_key``
/ ``Directory.signer`` (resolve a key id to its owner and Ed25519 public key), ``Directory.kem_key``,
``keystore.load_org_signing_key`` / ``keystore.load_org_kem_key`` (an organisation's private keys) and
``pki.peer_identity`` (who is on the other end of an mTLS connection). See docs/adr/0004.
"""
