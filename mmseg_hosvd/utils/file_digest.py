"""A file's SHA-256, read in blocks."""
import hashlib


def file_digest(path: str) -> str:
    """The SHA-256 of a file's bytes, in hex.

    Args:
        path: The file.
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()
