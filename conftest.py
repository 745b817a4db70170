pytest_plugins = ["tests.fixtures", "audit.tests.plugin"]
