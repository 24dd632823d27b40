"""Request and response models, split Base / Create / Public per resource."""
