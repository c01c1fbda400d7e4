"""The frozen v3.4 selection engine (benchmark; spec_version 3.4). Imports only contracts and market."""
