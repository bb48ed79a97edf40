"""The REST API's shared base: authentication, permissions, errors, pagination, throttling."""
