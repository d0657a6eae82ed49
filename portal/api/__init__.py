"""What every endpoint of `/api/v1/` shares: authentication, errors, pagination, throttling, schema."""
