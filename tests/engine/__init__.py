"""The engine's tests (a package, so module names like test_article stay unique)."""
