"""The SDK's tests (a package, so module names like test_errors stay unique)."""
