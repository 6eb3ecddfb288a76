"""The Auxia API's behaviour: the servicer and the rules of each RPC, on the storage seam.

It knows no transport and no SQL: it reads and writes through
``_storage.seam``, and the emulator plugs into it through the interfaces the
servicer defines (``CallFaults``, ``DecisionListener``).
"""
