"""The benchmark: seeded data, the floors, the real service side by side (`make bench`)."""
