import Lisafs
