"""Built-in coldstart-peft plugins, installed as ``coldstart_peft_plugins``.

Each module is a plugin loaded through the ``coldstart_peft`` entry-point group, the same
path third-party plugins take, and uses only the public API of ``coldstart_peft``.
"""
