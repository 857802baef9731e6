def test_template_database_has_the_tiny_model(settings):
    from vstore.migrations import require_model

    assert require_model(settings).dim == 32
