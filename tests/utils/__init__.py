"""What tests share: clients of the services, accounts, an SMTP inbox, sagas through the HTTP API."""
