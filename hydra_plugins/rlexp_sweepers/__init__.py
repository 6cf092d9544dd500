"""rlexp's Hydra sweepers. Hydra instantiates only sweepers it discovers in the ``hydra_plugins``
namespace, so this package lives there (it ships in rlexp's wheel beside ``rlexp``)."""
