"""RQ task functions and the worker start-up: the one place joining app, training and storage."""
