"""Pure building blocks of a framework's decisions (no I/O): the effects its machine returns for a
shell to carry out (effects), and offer arithmetic (offers). The asyncio side is meseta.client."""
