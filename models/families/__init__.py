"""One module per architecture family, each with ``build(architecture, input_shape,
num_classes, seed) -> CNN``; ``models.builder.FAMILY_BUILDERS`` is their registry."""
