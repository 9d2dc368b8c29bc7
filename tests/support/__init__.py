"""What the tests share, each defined once.

Fixture plugins (registered for every test by ``pytest_plugins`` in ``tests/conftest.py``):

* ``sandboxes`` - ``sandbox``/``api`` (session demo sandbox over loopback HTTP and an httpx client
  on its API root), ``empty_sandbox``/``empty_api`` (fresh per test), ``inprocess_sandbox`` (an
  organisation served in-process over ``httpx.ASGITransport``: no socket, no thread).
* ``connections`` - ``d365`` (a ``Dataverse`` on the session sandbox), ``empty_d365``,
  ``inprocess_d365``, ``entra`` (the fake Entra ID, the only faked part).
* ``shells`` - ``bare_shell``, ``shell`` (IPython with ``%load_ext d365nb``, connected to the
  session sandbox), ``magic``.

Helpers imported by tests (``from tests.support.<module> import ...``): ``shells.run_cell`` /
``CellFailed``, ``waiting.wait_for``, ``entra.FakeEntra``, ``records`` (``create`` a record over
HTTP and get its id, ``created_id``, ``present``), ``flows`` (fixtures the flows and export
directories import into their ``conftest.py``: a module-scoped empty sandbox
``sandbox_handle`` with its ``d365``, ``history``, the flows ``shell``), ``forms`` (raw Web API
reader, form filler), ``export`` (schema path, org URL), ``tagged_flows`` (a lead flow whose
trigger only sees leads of one test, and waiting for its runs), ``completion`` (IPython completion
while typing), ``refusals.one_line_refusal`` (a cell that must fail with one line),
``spec_text.one_line_refusals`` (the parametrized "bad setting text" test of a parser),
``lookups.create_under`` (a record bound to an account).

A directory whose tests mean something else by a name (``d365`` is the magic runner in
``tests/notebook``) overrides it in its own ``conftest.py``.
"""
