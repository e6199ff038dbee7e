"""Image automation's engine: tag policies, YAML setters and commit messages.

The ImageRepository, ImagePolicy and ImageUpdateAutomation reconcilers drive it;
nothing here talks to Kubernetes, so every rule is unit-testable on its own.
"""
