"""The UI's routes by area, gathered by ui/urls.py into the "ui" namespace."""
